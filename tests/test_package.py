"""``import resnet_stability``: light (no TensorFlow), and its modules import TensorFlow
quietly (no C++ start-up lines on stderr), without overriding the user's log level."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python(code: str, **env_changes) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # as a new user has it
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(env_changes)
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)


def test_importing_the_layers_prints_nothing_to_stderr():
    result = python("import resnet_stability.layers, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr
    assert result.stdout.strip() == "2"


def test_a_log_level_the_user_set_is_kept():
    result = python("import resnet_stability.models, os; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])",
                    TF_CPP_MIN_LOG_LEVEL="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_importing_the_package_does_not_import_tensorflow():
    result = python("import sys, resnet_stability; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    assert result.stdout.split() == ["False", "False"], result
