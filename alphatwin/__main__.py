"""``python -m alphatwin``: the ``alphatwin`` command (for notebooks and scripts that call the CLI
with ``sys.executable``)."""

from alphatwin.cli.main import run

if __name__ == "__main__":
    run()
