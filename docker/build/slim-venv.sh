#!/bin/sh
# Slim a built venv before it ships, then prove it still works:
# - the test suites some libraries bundle (pandas/tests alone is 46 MB) are never imported
#   at run time; only these named libraries' are removed, since other `tests` folders can
#   be real code (dbt's own test macros live in .../macros/materializations/tests);
# - some wheels ship shared libraries with symbols (pyarrow: 20% of its size); only those
#   are stripped, never auditwheel's vendored `*.libs/` (patchelf'd: strip breaks them);
# - every adapter of the variant, and the libraries they load, must still import.
set -eu
venv=$1
site=$(echo "$venv"/lib/python3*/site-packages)

for lib in numpy pandas pyarrow networkx google/genai; do
  if [ -d "$site/$lib" ]; then find "$site/$lib" -type d -name tests -prune -exec rm -rf {} +; fi
done
find "$site" -type f -name '*.so*' -not -path '*.libs/*' | while read -r lib; do
  if readelf -S "$lib" 2>/dev/null | grep -q '\.symtab'; then strip --strip-unneeded "$lib"; fi
done
find "$site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete
# - Babel (agate's, which dbt uses for seeds and result tables) ships all 1,000+ CLDR
#   locales, 30 MB; agate reads numbers and dates in en_US: keep it and its parents.
if [ -d "$site/babel/locale-data" ]; then
  find "$site/babel/locale-data" -name '*.dat' ! -name root.dat ! -name en.dat \
    ! -name en_US.dat ! -name en_US_POSIX.dat -delete
fi

"$venv/bin/python" - <<'PY'
import importlib, importlib.metadata as md, importlib.util
checks = {
    "dbt-duckdb": ["dbt.adapters.duckdb", "duckdb"],
    "dbt-postgres": ["dbt.adapters.postgres", "psycopg2"],
    "dbt-redshift": ["dbt.adapters.redshift", "redshift_connector"],
    "dbt-bigquery": ["dbt.adapters.bigquery", "google.cloud.bigquery", "pyarrow", "pandas", "numpy", "grpc"],
}
imported = ["dbt.cli.main", "boto3", "pydantic_settings", "yaml"]
for dist, modules in checks.items():
    try:
        md.version(dist)
    except md.PackageNotFoundError:
        continue
    imported += modules
for module in imported:
    importlib.import_module(module)
import agate, decimal  # the locale agate parses seeds in is still there
assert agate.Number().cast("1,234.5") == decimal.Decimal("1234.5")
if "pyarrow" in imported:  # the stripped libraries load and compute
    import pyarrow, pyarrow.compute
    assert pyarrow.compute.sum(pyarrow.array([1, 2, 3])).as_py() == 6
print("venv imports:", ", ".join(imported))
PY
