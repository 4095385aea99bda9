"""Mirror placement: which set of k sites serves the demand with the lowest estimated latency.

This is the capacitated k-median (facility-location) problem. Given demand points (bytes at a
latitude/longitude: client demand by location, or origin demand as miss bytes by POP) and candidate
sites (`pipeline/data/sites.yaml`: existing mirrors plus colocation candidates), `place` returns, for
k = 1..k_max, the site set that minimises the bytes-weighted mean RTT while every site stays within
its monthly capacity, with the marginal gain of each added site, the share of bytes served under
50 ms and the monthly cost.

How it is solved: a mixed-integer programme (binary "site open" y_j, continuous share x_ij of point
i served by site j, strong linking x_ij <= y_j, capacity sum_i q_i x_ij <= C_j y_j, sum_j y_j = k),
handed to HiGHS (`highspy`): a maintained MIP solver, thin wheels, no system libraries. HiGHS runs
with a zero relative gap, so the answer is the proven optimum (checked against `brute_force` by a
property test).

Exact vs approximate:
- Exact whenever (distinct demand locations) x (candidates) <= `EXACT_MAX_PAIRS`: the MIP sees
  every point (points at the same coordinates are merged first, which changes nothing) and is
  solved to a proven optimum. Every instance of <= 12 candidates in the tests is on this path.
- Above that: the demand is snapped to a latitude/longitude grid (bytes-weighted cell centroids,
  cell size doubled from `GRID_START_DEG` until at most `GRID_MAX_CELLS` cells), the candidates are
  shortlisted (`_shortlist`), and HiGHS stops at a 1% gap or `SCALE_TIME_LIMIT_S` per k. The chosen
  set is then evaluated exactly on the full, un-gridded demand, so the reported latency, share and
  feasibility are true for that set; only the set's optimality is approximate. The test suite
  holds it to within 2% of the exact optimum's mean latency on a mid-size instance (800 demand
  points x the 37 packaged sites, solved both ways). Measured: 500
  candidates x 5,000 points, k = 1..10, ~11 s (about 1 s per k).

Cost (`within_budget`, `frontier`): the same MIP with a monthly cost row instead of a fixed k, for
the best latency within a budget, and walked from the cheap end for the latency-versus-cost
frontier (each point the cheapest set at least `min_gain_ms` faster than the one before). Sets
there must have the capacity for the whole demand; exact and approximate as above.
"""

from __future__ import annotations

import importlib.resources
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import highspy
import numpy as np
import polars as pl
import yaml

# --- Latency model ---------------------------------------------------------------------------
# rtt_ms = BASE_MS + great_circle_km * MS_PER_KM
# Light in fibre travels at ~200,000 km/s (refractive index ~1.5), i.e. 200 km per ms one way, so a
# perfectly straight fibre costs 1 ms of round trip per 100 km. Real routes follow roads, rails and
# sea cables and detour through exchange points: measured RTTs between European and transatlantic
# city pairs sit around 1.3-2x the straight-line figure, so ROUTE_FACTOR = 1.5 (a middle value; raise
# it for regions with poor peering). BASE_MS covers what distance does not: access network, last
# mile, queueing and server time (a client next door to a mirror still sees a few ms).
EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
FIBRE_KM_PER_MS = 200.0  # one-way distance light covers in fibre per millisecond
ROUTE_FACTOR = 1.5  # real fibre path length / great-circle distance
BASE_MS = 5.0  # distance-independent RTT floor
MS_PER_KM = 2.0 * ROUTE_FACTOR / FIBRE_KM_PER_MS  # 0.015 ms RTT per great-circle km
WITHIN_MS = 50.0  # the "good enough" RTT the share column reports (~3,000 km with these constants)

# --- Scale switches --------------------------------------------------------------------------
# Up to this many (demand point, candidate) pairs the MIP is solved on the full data: exact. The
# capacitated root LP grows with the pairs; ~20k pairs solve in seconds when capacity is loose and
# up to a minute per k when it binds tightly.
EXACT_MAX_PAIRS = 20_000
# Above it: demand snapped to a grid (cell size doubled from GRID_START_DEG until at most
# GRID_MAX_CELLS cells), candidates shortlisted, the MIP stopped at a gap or a time limit.
GRID_START_DEG = 1.0
GRID_MAX_CELLS = 200
SHORTLIST_NEAREST = 40
SHORTLIST_LARGEST = 10
SHORTLIST_CENTRAL = 10
SCALE_REL_GAP = 1e-2
SCALE_TIME_LIMIT_S = 2.0

_CAP_TOL = 1e-9  # relative slack when comparing capacity with demand (float sums)


@dataclass(frozen=True)
class Site:
    """A place a mirror could run (or already runs): location, monthly capacity and cost."""

    name: str
    lat: float
    lon: float
    capacity_tb: float
    cost_month: float
    existing: bool = False


@dataclass(frozen=True)
class Step:
    """The best set of k sites and what it buys.

    `added` is the first site (in `sites` order) not in the previous step's set, or "" if none: the
    optimal sets need not be nested, so going from k-1 to k may swap sites as well as add one.
    `gain_ms` is the previous step's mean latency minus this one's (0.0 for the first step).
    `feasible` is False when no set of k sites has the capacity for the whole demand; that step then
    reports the best set with capacity ignored (nearest-site assignment), a lower bound.
    """

    k: int
    sites: tuple[str, ...]
    added: str
    mean_latency_ms: float
    gain_ms: float
    share_within_50ms: float
    cost_month: float
    feasible: bool


# --- Sites file ------------------------------------------------------------------------------

_SITE_FIELDS = {"name", "lat", "lon", "capacity_tb", "cost_month", "existing"}
_SITE_EXTRA_FIELDS = {"location", "note", "url", "kind"}  # documentation only, ignored


def load_sites(path: Path | None = None) -> list[Site]:
    """Read a sites file (default: the packaged `pipeline/data/sites.yaml`), validating every entry."""
    if path is None:
        ref = importlib.resources.files("pipeline.data").joinpath("sites.yaml")
        source, text = "pipeline/data/sites.yaml", ref.read_text("utf-8")
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{source}: cannot read sites file: {err}") from err
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{source}: not valid YAML: {err}") from err
    entries = doc.get("sites") if isinstance(doc, dict) else doc
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{source}: expected a non-empty list of sites (or a 'sites:' list)")
    sites: list[Site] = []
    seen: set[str] = set()
    for n, entry in enumerate(entries, start=1):
        site = _parse_site(entry, f"{source}: entry {n}")
        if site.name in seen:
            raise ValueError(f"{source}: entry {n}: duplicate site name {site.name!r}")
        seen.add(site.name)
        sites.append(site)
    return sites


def _parse_site(entry: object, where: str) -> Site:
    """One validated `Site` from a YAML mapping; `where` names the file and entry in errors."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: 'name' must be a non-empty string")
    where = f"{where} ({name})"
    unknown = set(entry) - _SITE_FIELDS - _SITE_EXTRA_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}")

    def number(key: str, low: float, high: float) -> float:
        value = entry.get(key)
        # bool is an int subclass; `capacity_tb: yes` is a typo, not 1 TB
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}: {key!r} must be a number, got {value!r}")
        if not (low <= float(value) <= high) or math.isnan(value):
            raise ValueError(f"{where}: {key!r} = {value} is outside [{low}, {high}]")
        return float(value)

    existing = entry.get("existing", False)
    if not isinstance(existing, bool):
        raise ValueError(f"{where}: 'existing' must be true or false, got {existing!r}")
    return Site(
        name=name.strip(),
        lat=number("lat", -90.0, 90.0),
        lon=number("lon", -180.0, 180.0),
        capacity_tb=number("capacity_tb", 0.0, math.inf),
        cost_month=number("cost_month", 0.0, math.inf),
        existing=existing,
    )


# --- Latency ---------------------------------------------------------------------------------


def latency_ms(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Estimated RTT in ms between two points (haversine great circle, constants above)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))
    return BASE_MS + km * MS_PER_KM


def latency_matrix_ms(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """Vectorised `latency_ms`: RTT from every point 1 (rows) to every point 2 (columns)."""
    p1 = np.radians(np.asarray(lat1, dtype=np.float64))[:, None]
    p2 = np.radians(np.asarray(lat2, dtype=np.float64))[None, :]
    dl = (
        np.radians(np.asarray(lon2, dtype=np.float64))[None, :]
        - np.radians(np.asarray(lon1, dtype=np.float64))[:, None]
    )
    h = np.sin((p2 - p1) / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(1.0, np.sqrt(h)))
    return BASE_MS + km * MS_PER_KM


# --- The instance ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Instance:
    """Demand and candidates as arrays: what both solvers work on."""

    lat: np.ndarray  # demand points (distinct locations)
    lon: np.ndarray
    share: np.ndarray  # each point's share of the bytes (sums to 1)
    demand_tb: float  # total demand in TB/month
    cap: np.ndarray  # per site, TB/month
    cost: np.ndarray
    names: tuple[str, ...]
    fixed: np.ndarray  # site indices that every set contains
    lat_ms: np.ndarray  # points x sites RTT


def _instance(
    demand: pl.DataFrame, sites: list[Site], tb_per_month_scale: float, fixed: Sequence[str]
) -> _Instance:
    """Validate the inputs and merge demand rows at identical coordinates (a lossless reduction)."""
    missing = {"latitude", "longitude", "bytes"} - set(demand.columns)
    if missing:
        raise ValueError(f"demand lacks column(s) {sorted(missing)}")
    if not sites:
        raise ValueError("no candidate sites")
    names = tuple(s.name for s in sites)
    if len(set(names)) != len(names):
        raise ValueError("site names must be unique")
    unknown = [f for f in fixed if f not in names]
    if unknown:
        raise ValueError(f"fixed site(s) not among the candidates: {unknown}")
    if not tb_per_month_scale > 0:
        raise ValueError(f"tb_per_month_scale must be positive, got {tb_per_month_scale}")
    # Rows without a location cannot be placed (GeoIP misses); they are left out, not guessed.
    points = (
        demand.lazy()
        .select(
            pl.col("latitude").cast(pl.Float64),
            pl.col("longitude").cast(pl.Float64),
            pl.col("bytes").cast(pl.Float64),
        )
        .drop_nulls(["latitude", "longitude"])
        .filter(pl.col("bytes") > 0)
        .group_by("latitude", "longitude")
        .agg(pl.col("bytes").sum())
        .sort("latitude", "longitude")  # group_by order is not stable; the solver should be
        .collect()
    )
    if demand.filter(pl.col("bytes") < 0).height:
        raise ValueError("demand has negative bytes")
    total = float(points["bytes"].sum()) if points.height else 0.0
    if total <= 0:
        raise ValueError("demand has no bytes at a known location")
    lat, lon = points["latitude"].to_numpy(), points["longitude"].to_numpy()
    if np.any(np.abs(lat) > 90) or np.any(np.abs(lon) > 180):
        raise ValueError("demand latitude/longitude out of range")
    site_lat = np.array([s.lat for s in sites])
    site_lon = np.array([s.lon for s in sites])
    return _Instance(
        lat=lat,
        lon=lon,
        share=points["bytes"].to_numpy() / total,
        demand_tb=total * tb_per_month_scale / 1e12,
        cap=np.array([s.capacity_tb for s in sites], dtype=np.float64),
        cost=np.array([s.cost_month for s in sites], dtype=np.float64),
        names=names,
        fixed=np.array(sorted({names.index(f) for f in fixed}), dtype=np.int64),
        lat_ms=latency_matrix_ms(lat, lon, site_lat, site_lon),
    )


def _feasible_k(inst: _Instance, k: int) -> bool:
    """Whether some k-set (with the fixed sites) has the capacity for the whole demand.

    Demand may be split across sites and every site can reach every point, so only the total
    capacity matters: the fixed sites plus the largest of the others.
    """
    others = np.delete(inst.cap, inst.fixed)
    best = inst.cap[inst.fixed].sum() + np.sort(others)[::-1][: k - len(inst.fixed)].sum()
    return bool(best >= inst.demand_tb * (1 - _CAP_TOL))


# --- HiGHS -----------------------------------------------------------------------------------


class _Infeasible(RuntimeError):
    """The model has no solution (a cost MIP asked for what no set can do)."""


def _highs(
    cost: np.ndarray,
    col_lower: np.ndarray,
    col_upper: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    vals: np.ndarray,
    row_lower: np.ndarray,
    row_upper: np.ndarray,
    integer: np.ndarray | None = None,
    rel_gap: float = 0.0,
    time_limit: float = math.inf,
) -> np.ndarray:
    """Solve min cost.x subject to row and column bounds (matrix in COO form); the optimal x."""
    order = np.lexsort((rows, cols))  # HiGHS takes the matrix column-wise
    ncol = len(cost)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = ncol, len(row_lower)
    lp.col_cost_, lp.col_lower_, lp.col_upper_ = cost, col_lower, col_upper
    lp.row_lower_, lp.row_upper_ = row_lower, row_upper
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.searchsorted(cols[order], np.arange(ncol + 1)).astype(np.int32)
    lp.a_matrix_.index_ = rows[order].astype(np.int32)
    lp.a_matrix_.value_ = vals[order]
    if integer is not None:
        kinds = [highspy.HighsVarType.kContinuous] * ncol
        for j in np.flatnonzero(integer):
            kinds[j] = highspy.HighsVarType.kInteger
        lp.integrality_ = kinds
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", rel_gap)
    h.setOptionValue("mip_abs_gap", 1e-9)
    h.setOptionValue("random_seed", 0)
    if math.isfinite(time_limit):
        h.setOptionValue("time_limit", time_limit)
    h.passModel(lp)
    h.run()
    status = h.getModelStatus()
    # At the time limit a MIP keeps its best feasible point: good enough where we asked for a limit.
    timed_out = (
        status == highspy.HighsModelStatus.kTimeLimit and h.getInfo().primal_solution_status == 2
    )
    if status == highspy.HighsModelStatus.kInfeasible:
        raise _Infeasible(h.modelStatusToString(status))
    if status != highspy.HighsModelStatus.kOptimal and not timed_out:
        raise RuntimeError(f"HiGHS did not find an optimum: {h.modelStatusToString(status)}")
    return np.asarray(h.getSolution().col_value)


def _assign(inst: _Instance, chosen: np.ndarray, capacitated: bool) -> tuple[float, float]:
    """Mean RTT and share within 50 ms when the demand is served by `chosen` (site indices).

    Nearest open site when capacity does not bind (that is optimal then); otherwise the
    transportation LP: split points across sites so every site stays within capacity.
    """
    d = inst.lat_ms[:, chosen]
    near = np.argmin(d, axis=1)
    load = np.bincount(near, weights=inst.share * inst.demand_tb, minlength=len(chosen))
    if not capacitated or np.all(load <= inst.cap[chosen] * (1 + _CAP_TOL)):
        best = d[np.arange(len(d)), near]
        return float(inst.share @ best), float(inst.share @ (best < WITHIN_MS))
    n, k = d.shape
    i, j = np.divmod(np.arange(n * k), k)  # column p = x[i, j], row-major
    q = inst.share * inst.demand_tb
    x = _highs(
        cost=(inst.share[i] * d[i, j]),
        col_lower=np.zeros(n * k),
        col_upper=np.ones(n * k),
        rows=np.concatenate([i, n + j]),
        cols=np.concatenate([np.arange(n * k)] * 2),
        vals=np.concatenate([np.ones(n * k), q[i]]),
        row_lower=np.concatenate([np.ones(n), np.full(k, -np.inf)]),
        row_upper=np.concatenate([np.ones(n), inst.cap[chosen] * (1 + _CAP_TOL)]),
    )
    served = inst.share[i] * x
    return float(served @ d[i, j]), float(served @ (d[i, j] < WITHIN_MS))


class _Model:
    """A linear model assembled block by block (COO triplets), then handed to HiGHS."""

    def __init__(self) -> None:
        self.ncol = 0
        self.nrow = 0
        self.cost: list[np.ndarray] = []
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.row_lower: list[np.ndarray] = []
        self.row_upper: list[np.ndarray] = []
        self.rows: list[np.ndarray] = []
        self.cols: list[np.ndarray] = []
        self.vals: list[np.ndarray] = []

    def add_cols(self, cost: np.ndarray, lower: float, upper: float, integer: bool = False) -> int:
        """Append len(cost) columns; returns the first column's index."""
        first, n = self.ncol, len(cost)
        self.cost.append(np.asarray(cost, dtype=np.float64))
        self.lower.append(np.full(n, lower))
        self.upper.append(np.full(n, upper))
        self.integer.append(np.full(n, integer))
        self.ncol += n
        return first

    def add_rows(self, lower: np.ndarray | float, upper: np.ndarray | float, n: int) -> int:
        """Append n rows with the given bounds; returns the first row's index."""
        first = self.nrow
        self.row_lower.append(np.broadcast_to(np.asarray(lower, dtype=np.float64), (n,)))
        self.row_upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), (n,)))
        self.nrow += n
        return first

    def coef(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray | float) -> None:
        """Add matrix entries (rows, cols, vals broadcast together)."""
        r, c, v = np.broadcast_arrays(rows, cols, np.asarray(vals, dtype=np.float64))
        self.rows.append(r.ravel())
        self.cols.append(c.ravel())
        self.vals.append(v.ravel())

    def solve(self, rel_gap: float, time_limit: float) -> np.ndarray:
        """The optimal column values (within `rel_gap` of the optimum for a MIP)."""
        integer = np.concatenate(self.integer)
        return _highs(
            np.concatenate(self.cost),
            np.concatenate(self.lower),
            np.concatenate(self.upper),
            np.concatenate(self.rows).astype(np.int64),
            np.concatenate(self.cols).astype(np.int64),
            np.concatenate(self.vals),
            np.concatenate(self.row_lower),
            np.concatenate(self.row_upper),
            integer if integer.any() else None,
            rel_gap,
            time_limit,
        )


def _facility_model(
    lat_ms: np.ndarray,
    share: np.ndarray,
    demand_tb: float,
    cap: np.ndarray,
    fixed: np.ndarray,
    capacitated: bool,
    site_cost: np.ndarray | None = None,
) -> tuple[_Model, int, int]:
    """The k-median rows every variant shares; returns (model, first x column, first y column).

    The objective is the bytes-weighted mean RTT, or, with `site_cost`, the sets' monthly cost.
    """
    n, m = lat_ms.shape
    # Capacity rows in shares of the whole demand, so that their coefficients are O(1) at any
    # volume: in TB, a small demand left them near HiGHS's tolerances, which then misjudged
    # feasibility. A site never serves more than all the demand, so a share above 1 is 1.
    cap_share = np.minimum(cap / demand_tb, 1.0) if demand_tb > 0 else np.ones(m)
    pi, pj = np.divmod(np.arange(n * m), m)
    npair = len(pi)
    mod = _Model()
    # x[p]: share of point pi[p] served by site pj[p]; objective = bytes-weighted mean RTT
    x_cost = np.zeros(npair) if site_cost is not None else share[pi] * lat_ms[pi, pj]
    x0 = mod.add_cols(x_cost, 0.0, 1.0)
    y0 = mod.add_cols(np.zeros(m) if site_cost is None else site_cost, 0.0, 1.0, integer=True)
    mod.lower[-1][fixed] = 1.0
    r_assign = mod.add_rows(1.0, 1.0, n)  # every point fully served
    mod.coef(r_assign + pi, x0 + np.arange(npair), 1.0)
    r_link = mod.add_rows(-np.inf, 0.0, npair)  # x_ij <= y_j: the strong (tight) linking
    mod.coef(r_link + np.arange(npair), x0 + np.arange(npair), 1.0)
    mod.coef(r_link + np.arange(npair), y0 + pj, -1.0)
    r_cap = mod.add_rows(-np.inf, 0.0 if capacitated else np.inf, m)  # load <= capacity if open
    mod.coef(r_cap + pj, x0 + np.arange(npair), share[pi])
    mod.coef(r_cap + np.arange(m), y0 + np.arange(m), -cap_share * (1 + _CAP_TOL))
    if capacitated:
        # Open capacity covers the demand: implied by the rows above, but stating it tightens the
        # LP relaxation (the classic facility-location cut), which shortens the search.
        r_total = mod.add_rows(1 - _CAP_TOL, np.inf, 1)
        mod.coef(np.full(m, r_total), y0 + np.arange(m), cap_share)
    return mod, x0, y0


def _solve_mip(
    lat_ms: np.ndarray,
    share: np.ndarray,
    demand_tb: float,
    cap: np.ndarray,
    fixed: np.ndarray,
    k: int,
    capacitated: bool,
    rel_gap: float = 0.0,
    time_limit: float = math.inf,
) -> np.ndarray:
    """Indices of the optimal k sites for the k-median MIP (capacitated or not).

    Optimal when rel_gap is 0 and no time limit is hit; otherwise HiGHS's best set so far.
    """
    m = lat_ms.shape[1]
    mod, _, y0 = _facility_model(lat_ms, share, demand_tb, cap, fixed, capacitated)
    r_card = mod.add_rows(float(k), float(k), 1)  # exactly k sites
    mod.coef(np.full(m, r_card), y0 + np.arange(m), 1.0)
    x = mod.solve(rel_gap, time_limit)
    return np.flatnonzero(x[y0 : y0 + m] > 0.5)


def _grid(inst: _Instance) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Demand snapped to grid cells small enough to fit: (lat, lon, share) of cell centroids."""
    deg = GRID_START_DEG
    while True:
        cell = np.floor(inst.lat / deg) * 1e4 + np.floor(inst.lon / deg)
        cells, cid = np.unique(cell, return_inverse=True)
        if len(cells) <= GRID_MAX_CELLS or deg >= 180:
            break
        deg *= 2
    w = np.bincount(cid, weights=inst.share)
    # bytes-weighted centroid in lat/lon: fine at cell sizes of a few degrees
    clat = np.bincount(cid, weights=inst.share * inst.lat) / w
    clon = np.bincount(cid, weights=inst.share * inst.lon) / w
    return clat, clon, w


def _choose(
    inst: _Instance, k: int, capacitated: bool, site_lat: np.ndarray, site_lon: np.ndarray
) -> np.ndarray:
    """The site indices for k: exact MIP on the full demand, or the reduced model at scale."""
    n, m = inst.lat_ms.shape
    if n * m <= EXACT_MAX_PAIRS:
        return _solve_mip(
            inst.lat_ms, inst.share, inst.demand_tb, inst.cap, inst.fixed, k, capacitated
        )
    clat, clon, w = _grid(inst)
    d = latency_matrix_ms(clat, clon, site_lat, site_lon)
    keep = _shortlist(d, w, inst.cap, inst.fixed, k)
    fixed = np.searchsorted(keep, inst.fixed)
    sub = _solve_mip(
        d[:, keep],
        w,
        inst.demand_tb,
        inst.cap[keep],
        fixed,
        k,
        capacitated,
        SCALE_REL_GAP,
        SCALE_TIME_LIMIT_S,
    )
    return keep[sub]


def _shortlist(
    d: np.ndarray, w: np.ndarray, cap: np.ndarray, fixed: np.ndarray, k: int
) -> np.ndarray:
    """Candidates worth offering the MIP at scale (sorted indices).

    The fixed sites; the sites nearest to the most bytes (where k-median optima live); the largest
    sites (capacity may need them even if they are nobody's nearest); and the best single sites
    (for small k the optimum is central, not near anyone).
    """
    m = d.shape[1]
    nearest_bytes = np.bincount(np.argmin(d, axis=1), weights=w, minlength=m)
    picks = [
        fixed,
        np.argsort(-nearest_bytes, kind="stable")[:SHORTLIST_NEAREST],
        np.argsort(-cap, kind="stable")[:SHORTLIST_LARGEST],
        np.argsort(w @ d, kind="stable")[: max(SHORTLIST_CENTRAL, k)],
    ]
    return np.unique(np.concatenate(picks)).astype(np.int64)


def _steps(inst: _Instance, sets: list[tuple[int, np.ndarray, bool]]) -> list[Step]:
    """Turn the chosen set per k into `Step`s (metrics, gains, the added site)."""
    steps: list[Step] = []
    prev: tuple[str, ...] = ()
    prev_ms: float | None = None
    for k, chosen, feasible in sets:
        chosen = np.sort(chosen)
        mean_ms, within = _assign(inst, chosen, capacitated=feasible)
        names = tuple(inst.names[j] for j in chosen)
        added = next((s for s in names if s not in prev), "")
        steps.append(
            Step(
                k=k,
                sites=names,
                added=added,
                mean_latency_ms=mean_ms,
                gain_ms=0.0 if prev_ms is None else prev_ms - mean_ms,
                share_within_50ms=within,
                cost_month=float(inst.cost[chosen].sum()),
                feasible=feasible,
            )
        )
        prev, prev_ms = names, mean_ms
    return steps


def _k_range(inst: _Instance, k_max: int) -> range:
    """k from the number of fixed sites (at least 1) up to k_max (at most every site)."""
    return range(max(1, len(inst.fixed)), min(k_max, len(inst.names)) + 1)


def place(
    demand: pl.DataFrame,
    sites: list[Site],
    k_max: int,
    tb_per_month_scale: float = 1.0,
    fixed: Sequence[str] = (),
) -> list[Step]:
    """The best set of k sites for k = 1..k_max (from len(fixed) if larger), one `Step` each.

    `demand`: columns latitude, longitude, bytes (one row per demand point). `bytes *
    tb_per_month_scale / 1e12` is the monthly demand in TB that site capacities are compared with
    (e.g. scale = 30 / days covered). `fixed` sites are in every set. Exact up to EXACT_MAX_PAIRS
    (points x candidates), approximate set choice above it (see the module docstring).
    """
    inst = _instance(demand, sites, tb_per_month_scale, fixed)
    site_lat = np.array([s.lat for s in sites])
    site_lon = np.array([s.lon for s in sites])
    sets = []
    for k in _k_range(inst, k_max):
        feasible = _feasible_k(inst, k)
        sets.append((k, _choose(inst, k, feasible, site_lat, site_lon), feasible))
    return _steps(inst, sets)


def brute_force(
    demand: pl.DataFrame,
    sites: list[Site],
    k_max: int,
    tb_per_month_scale: float = 1.0,
    fixed: Sequence[str] = (),
) -> list[Step]:
    """`place` by trying every set (small instances only: the reference the tests compare with).

    Ties keep the first set in `itertools.combinations` order.
    """
    inst = _instance(demand, sites, tb_per_month_scale, fixed)
    if len(sites) > 16:
        raise ValueError(f"brute force over {len(sites)} candidates would take too long")
    free = [j for j in range(len(sites)) if j not in set(inst.fixed.tolist())]
    sets = []
    for k in _k_range(inst, k_max):
        feasible = _feasible_k(inst, k)
        best: tuple[float, np.ndarray] | None = None
        for combo in itertools.combinations(free, k - len(inst.fixed)):
            chosen = np.sort(np.concatenate([inst.fixed, np.array(combo, dtype=np.int64)]))
            if feasible and inst.cap[chosen].sum() < inst.demand_tb * (1 - _CAP_TOL):
                continue
            mean_ms, _ = _assign(inst, chosen, capacitated=feasible)
            if best is None or mean_ms < best[0] - 1e-12:
                best = (mean_ms, chosen)
        assert best is not None
        sets.append((k, best[1], feasible))
    return _steps(inst, sets)


# --- Cost: the best latency for the money ------------------------------------------------------

COST_RESOLUTION_EUR = 0.01  # monthly costs closer than a cent are the same cost
FRONTIER_MIN_GAIN_MS = 0.5  # each frontier step must buy at least this much mean RTT
FRONTIER_MAX_POINTS = 40  # a longer frontier is cut at its expensive end
SHORTLIST_CHEAPEST = 10  # at scale, the cheapest sites are offered too (the frontier's cheap end)
_SITE_TIEBREAK_MS = 1e-7  # per open site: among equal latencies, the fewest sites
_LAT_TOL = 1e-9  # slack on a latency row (solver tolerance)
_LAT_STEP = 1e-6  # relative: latencies closer than this are the same latency
_FRONTIER_RETRIES = 8  # re-asks of a frontier step the solver's tolerance answered wrongly


@dataclass(frozen=True)
class Choice:
    """A site set on the latency-versus-cost frontier (or the best one within a budget).

    `change` names the sites added (+) and dropped (-) against the next cheaper point of the
    frontier; `gain_ms` is what that step buys and `eur_per_ms` its price per ms (0 and NaN for
    the cheapest point).
    """

    sites: tuple[str, ...]
    cost_month: float
    mean_latency_ms: float
    share_within_50ms: float
    change: str = ""
    gain_ms: float = 0.0
    eur_per_ms: float = math.nan


@dataclass(frozen=True)
class _Reduced:
    """The instance the cost MIPs see: all of it when exact, else gridded and shortlisted."""

    lat_ms: np.ndarray
    share: np.ndarray
    keep: np.ndarray  # candidate indices offered (into the instance's sites)
    fixed: np.ndarray  # indices into keep
    rel_gap: float
    time_limit: float


def _reduce(inst: _Instance, sites: list[Site], k: int) -> _Reduced:
    n, m = inst.lat_ms.shape
    if n * m <= EXACT_MAX_PAIRS:
        return _Reduced(inst.lat_ms, inst.share, np.arange(m), inst.fixed, 0.0, math.inf)
    clat, clon, w = _grid(inst)
    site_lat, site_lon = np.array([s.lat for s in sites]), np.array([s.lon for s in sites])
    d = latency_matrix_ms(clat, clon, site_lat, site_lon)
    keep = np.union1d(
        _shortlist(d, w, inst.cap, inst.fixed, k),
        np.argsort(inst.cost, kind="stable")[:SHORTLIST_CHEAPEST],
    ).astype(np.int64)
    fixed = np.searchsorted(keep, inst.fixed)
    return _Reduced(d[:, keep], w, keep, fixed, SCALE_REL_GAP, SCALE_TIME_LIMIT_S)


def _cost_mip(
    inst: _Instance,
    red: _Reduced,
    k_max: int,
    minimise: str,
    max_cost: float = math.inf,
    max_latency: float = math.inf,
) -> tuple[np.ndarray, float] | None:
    """(site indices, mean RTT of the model's assignment) minimising "latency" or "cost" (each
    with the fewest sites among ties) within `max_cost` and `max_latency`, with capacity for the
    demand; None when no set qualifies. The RTT is the set's own (the optimal assignment) only
    when minimising latency, and on the reduced demand at scale."""
    cost, cap = inst.cost[red.keep], inst.cap[red.keep]
    n, m = red.lat_ms.shape
    per_site = cost + COST_RESOLUTION_EUR / (m + 1) if minimise == "cost" else None
    mod, x0, y0 = _facility_model(
        red.lat_ms, red.share, inst.demand_tb, cap, red.fixed, True, per_site
    )
    if minimise == "latency":
        mod.cost[1] = np.full(m, _SITE_TIEBREAK_MS)
    ys = y0 + np.arange(m)
    if math.isfinite(max_cost):
        mod.coef(np.full(m, mod.add_rows(-np.inf, max_cost, 1)), ys, cost)
    mod.coef(np.full(m, mod.add_rows(1.0, float(k_max), 1)), ys, 1.0)
    if math.isfinite(max_latency):
        pi, pj = np.divmod(np.arange(n * m), m)
        row = mod.add_rows(-np.inf, max_latency + _LAT_TOL * (1 + max_latency), 1)
        mod.coef(np.full(n * m, row), x0 + np.arange(n * m), red.share[pi] * red.lat_ms[pi, pj])
    try:
        x = mod.solve(red.rel_gap, red.time_limit)
    except _Infeasible:
        return None
    rtt = float(x[x0 : x0 + n * m] @ (red.share[:, None] * red.lat_ms).ravel())
    return red.keep[np.flatnonzero(x[y0 : y0 + m] > 0.5)], rtt


def _choice(inst: _Instance, chosen: np.ndarray) -> Choice:
    chosen = np.sort(chosen)
    mean_ms, within = _assign(inst, chosen, capacitated=True)
    return Choice(
        sites=tuple(inst.names[j] for j in chosen),
        cost_month=float(inst.cost[chosen].sum()),
        mean_latency_ms=mean_ms,
        share_within_50ms=within,
    )


def within_budget(
    demand: pl.DataFrame,
    sites: list[Site],
    budget_eur: float,
    k_max: int | None = None,
    tb_per_month_scale: float = 1.0,
    fixed: Sequence[str] = (),
) -> Choice:
    """The site set with the lowest mean latency whose monthly cost is at most `budget_eur`
    (at most `k_max` sites; capacity for the whole demand), the cheapest among equal latencies.

    Two MIPs: the best latency within the budget, then the cheapest set at that latency. Exact
    (solved to a proven optimum) up to EXACT_MAX_PAIRS; gridded and shortlisted above, like
    `place`. Raises ValueError when no set within the budget has the capacity.
    """
    if not budget_eur >= 0:
        raise ValueError(f"budget must be a non-negative amount of EUR, got {budget_eur}")
    inst = _instance(demand, sites, tb_per_month_scale, fixed)
    k = len(sites) if k_max is None else k_max
    red = _reduce(inst, sites, k)
    best = _cost_mip(inst, red, k, "latency", max_cost=budget_eur)
    if best is None:
        raise ValueError(
            f"no set of {'sites' if k_max is None else f'at most {k_max} sites'} within "
            f"{budget_eur:,.0f} EUR/month has the capacity for the demand "
            f"({inst.demand_tb:,.1f} TB/month)"
        )
    cheaper = _cost_mip(inst, red, k, "cost", max_cost=budget_eur, max_latency=best[1])
    return _choice(inst, (best if cheaper is None else cheaper)[0])


def frontier(
    demand: pl.DataFrame,
    sites: list[Site],
    k_max: int | None = None,
    tb_per_month_scale: float = 1.0,
    fixed: Sequence[str] = (),
    min_gain_ms: float = FRONTIER_MIN_GAIN_MS,
    max_points: int = FRONTIER_MAX_POINTS,
) -> list[Choice]:
    """The latency-versus-cost frontier, cheapest first: site sets no other set beats on both
    monthly cost and mean latency, each with what it buys over the one before.

    Walked from the cheap end: the cheapest set with the capacity (the best latency at that
    cost), then the cheapest set at least `min_gain_ms` faster, and so on (two MIPs a point).
    With `min_gain_ms` 0 every frontier point is listed; the default skips steps that buy
    less than half a millisecond (swapping one donated mirror for another, mostly). Exact up to
    EXACT_MAX_PAIRS, like `within_budget`; at most `max_points` (the expensive end is cut).
    """
    inst = _instance(demand, sites, tb_per_month_scale, fixed)
    k = len(sites) if k_max is None else k_max
    red = _reduce(inst, sites, k)
    points: list[Choice] = []
    bound, retries = math.inf, 0
    while len(points) < max_points:
        cheapest = _cost_mip(inst, red, k, "cost", max_latency=bound)
        if cheapest is None:
            break
        cost = float(inst.cost[cheapest[0]].sum())
        best = _cost_mip(inst, red, k, "latency", max_cost=cost + COST_RESOLUTION_EUR / 2)
        assert best is not None  # the cheapest set itself qualifies
        point = _choice(inst, best[0])
        if point.mean_latency_ms > bound + _LAT_TOL * (1 + bound) and retries < _FRONTIER_RETRIES:
            # HiGHS's feasibility tolerance (1e-6) let a set pass a latency row it misses (site
            # capacities tiny against it overfilled by a millionth): ask again, below by twice
            # what it was off, rather than list the same set again
            bound -= max(2 * (point.mean_latency_ms - bound), _LAT_STEP * (1 + bound))
            retries += 1
            continue
        points.append(point)
        bound = best[1] - max(min_gain_ms, _LAT_STEP * (1 + best[1]))
    return _marginals(points)


def _marginals(points: list[Choice]) -> list[Choice]:
    """Fills change, gain_ms and eur_per_ms against the next cheaper point (cheapest first)."""
    out = points[:1]
    for prev, p in itertools.pairwise(points):
        added = [f"+{s}" for s in p.sites if s not in prev.sites]
        dropped = [f"-{s}" for s in prev.sites if s not in p.sites]
        gain = prev.mean_latency_ms - p.mean_latency_ms
        out.append(
            Choice(
                p.sites, p.cost_month, p.mean_latency_ms, p.share_within_50ms,
                change=" ".join(added + dropped),
                gain_ms=gain,
                eur_per_ms=(p.cost_month - prev.cost_month) / gain if gain > 0 else math.inf,
            )
        )  # fmt: skip
    return out


def brute_force_frontier(
    demand: pl.DataFrame,
    sites: list[Site],
    k_max: int | None = None,
    tb_per_month_scale: float = 1.0,
    fixed: Sequence[str] = (),
    min_gain_ms: float = FRONTIER_MIN_GAIN_MS,
) -> list[Choice]:
    """`frontier` by evaluating every set (small instances only: the tests' reference)."""
    inst = _instance(demand, sites, tb_per_month_scale, fixed)
    if len(sites) > 12:
        raise ValueError(f"brute force over {len(sites)} candidates would take too long")
    free = [j for j in range(len(sites)) if j not in set(inst.fixed.tolist())]
    k = len(sites) if k_max is None else k_max
    evaluated = []
    for size in range(max(0, 1 - len(inst.fixed)), k - len(inst.fixed) + 1):
        for combo in itertools.combinations(free, size):
            chosen = np.sort(np.concatenate([inst.fixed, np.array(combo, dtype=np.int64)]))
            if inst.cap[chosen].sum() >= inst.demand_tb * (1 - _CAP_TOL):
                evaluated.append(_choice(inst, chosen))
    evaluated.sort(key=lambda c: (c.cost_month, c.mean_latency_ms, len(c.sites)))
    points: list[Choice] = []
    for c in evaluated:
        if points:
            bound = points[-1].mean_latency_ms - max(
                min_gain_ms, _LAT_STEP * (1 + points[-1].mean_latency_ms)
            )
            if c.mean_latency_ms > bound + _LAT_TOL * (1 + bound):
                continue
        # the best latency at this cost: the cheapest set is first, ties of cost come after
        same = [e for e in evaluated if abs(e.cost_month - c.cost_month) < COST_RESOLUTION_EUR / 2]
        points.append(min(same, key=lambda e: (e.mean_latency_ms, len(e.sites))))
    return _marginals(points)
