"""The one place that builds dlcdn's Dagster Definitions (`dagster dev -m assets.definitions`).

Every asset, asset check, job, schedule and sensor is found by loading the defs folder
(assets/defs/, one module per stage or per Dagster kind); only what binds them is added here.
"""

from pathlib import Path

import dagster as dg

from assets.resources import DlcdnResource

defs = dg.Definitions.merge(
    dg.load_from_defs_folder(path_within_project=Path(__file__).parent),
    dg.Definitions(
        resources={"dlcdn": DlcdnResource()},
        # Steps run in the run's own process: a process per step costs seconds of start-up, and
        # the work is one file or one day per run. Runs themselves go in parallel (dagster.yaml).
        executor=dg.in_process_executor,
    ),
)
