"""Install resnet_stability; the top-level data/ folder ships as resnet_stability/shipped_data."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
RUNTIME = [
    "tensorflow>=2.16,<2.22",
    "keras>=3.3,<4",
    "numpy>=1.26",
    "scikit-learn>=1.3,<2",
    "pandas>=2.0,<4",
    "ucimlrepo>=0.0.7",
    "matplotlib>=3.7,<4",
    "pyarrow>=14",  # Parquet transaction files, streamed row group by row group
]
DATA_FILES = [str(p.relative_to(HERE / "data")) for p in (HERE / "data").rglob("*") if p.is_file()]

setup(
    name="resnet_stability",
    version="0.1.0",
    description="Stability and accuracy of ODE-inspired residual networks (Zhang & Wynter reproduction)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["resnet_stability", "resnet_stability.*"]) + ["resnet_stability.shipped_data"],
    package_dir={"resnet_stability.shipped_data": "data"},
    package_data={"resnet_stability.shipped_data": DATA_FILES},
    install_requires=RUNTIME,
    extras_require={
        "test": ["pytest>=8,<10", "pytest-xdist>=3.5,<4", "nbclient>=0.10", "nbformat>=5.9", "ipykernel>=6.29"],
        # Sweeps on a Ray cluster: python -m resnet_stability.sweep --executor ray
        "ray": ["ray>=2.9"],
        # Another Keras backend: tests/test_backends.py (the layers compute the same under
        # JAX as under TensorFlow), tests/test_engines.py (so does the sweep's engine, whose
        # JAX path is the GPU route) and benchmarks/bench_backends.py
        "backends": ["jax>=0.4.30"],
    },
)
