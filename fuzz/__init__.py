"""Coverage-guided fuzz targets (atheris); see docs/hostile-input.md and ``make fuzz``."""
