#!/usr/bin/env bash
# Adds dlcdn's logging endpoint to a draft version of the Fastly service: JSON lines in the format
# of log-format.txt, one gzip file per hour, into an S3-compatible bucket that DLCDN_LANDING reads.
# Fastly API: POST /service/{id}/version/{version}/condition and .../logging/s3. It changes only
# the draft version named; activating that version is left to you (see docs/deploy.md).
#
# Settings (environment; the token and the keys never go on a command line or into a file here):
#   FASTLY_API_TOKEN      a token with engineer rights on the service
#   FASTLY_SERVICE_ID     the dl-cdn service
#   FASTLY_VERSION        an editable (cloned, not yet active) version of it
#   DLCDN_S3_BUCKET       bucket name
#   DLCDN_S3_DOMAIN       the S3-compatible endpoint's host name (Amazon S3: s3.amazonaws.com)
#   DLCDN_S3_PATH         folder inside the bucket (default /dl-cdn/)
#   DLCDN_S3_ACCESS_KEY, DLCDN_S3_SECRET_KEY   write-only credentials for that folder
#   FASTLY_API_URL        default https://api.fastly.com (the tests point it elsewhere)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
api="${FASTLY_API_URL:-https://api.fastly.com}"
for v in FASTLY_API_TOKEN FASTLY_SERVICE_ID FASTLY_VERSION DLCDN_S3_BUCKET DLCDN_S3_DOMAIN \
  DLCDN_S3_ACCESS_KEY DLCDN_S3_SECRET_KEY; do
  if [ -z "${!v:-}" ]; then
    echo "create-s3-endpoint: set $v (see the comment at the top of this script)" >&2
    exit 2
  fi
done
version="$api/service/$FASTLY_SERVICE_ID/version/$FASTLY_VERSION"
condition="dlcdn-edge-only"

post() {  # post URL FIELD=VALUE...; the token goes in a header read from a pipe, not argv
  local url="$1"
  shift
  local args=()
  for field in "$@"; do args+=(--data-urlencode "$field"); done
  curl --silent --show-error --fail-with-body --max-time 60 \
    -H @<(printf 'Fastly-Key: %s\n' "$FASTLY_API_TOKEN") \
    -H 'Accept: application/json' "${args[@]}" "$url"
  echo
}

# With shielding, vcl_log runs at the edge and again at the shield POP: log at the edge only,
# where client.ip is the client (Fastly's vcl_log reference, "Shielding considerations").
post "$version/condition" \
  "name=$condition" "type=RESPONSE" "priority=10" \
  "statement=fastly.ff.visits_this_service == 0"

post "$version/logging/s3" \
  "name=dlcdn" \
  "format=$(cat "$here/log-format.txt")" \
  "format_version=2" \
  "message_type=blank" \
  "period=3600" \
  "compression_codec=gzip" \
  "response_condition=$condition" \
  "bucket_name=$DLCDN_S3_BUCKET" \
  "domain=$DLCDN_S3_DOMAIN" \
  "path=${DLCDN_S3_PATH:-/dl-cdn/}" \
  "access_key@"<(printf '%s' "$DLCDN_S3_ACCESS_KEY") \
  "secret_key@"<(printf '%s' "$DLCDN_S3_SECRET_KEY")

echo "create-s3-endpoint: added to version $FASTLY_VERSION of $FASTLY_SERVICE_ID;" \
  "validate and activate it when ready" >&2
