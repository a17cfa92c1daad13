"""Keep every library off the network: no telemetry, no hub downloads.

Set before the libraries are imported (they read these at import time). `setdefault` lets a
user on a connected machine opt back in, e.g. `HF_HUB_OFFLINE=0` to download a base model.
"""

import os

OFFLINE_ENVIRONMENT = {
    # Hugging Face: never call the hub; models and datasets come from local paths or the cache.
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    # Usage reporting of the orchestration and tracking stack.
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "WANDB_DISABLED": "true",
    # Training loggers beyond MLflow would try to reach their services.
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "TOKENIZERS_PARALLELISM": "false",
}


def keep_offline() -> None:
    for name, value in OFFLINE_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
