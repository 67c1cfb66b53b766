"""A stand-in `azd` for the hook tests: its environment is a file of KEY=value lines that
`azd env get-value` reads and `azd env set` writes; anything else exits 2."""

from __future__ import annotations

from pathlib import Path


def write_azd(bin_dir: Path, env: dict[str, str]) -> Path:
    """Put an executable `azd` in `bin_dir` holding `env`; returns the environment file."""
    store = bin_dir.parent / "env"
    store.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    azd = bin_dir / "azd"
    azd.write_text(
        "#!/bin/sh\n"
        f'store="{store}"\n'
        'if [ "$1 $2" = "env get-value" ]; then\n'
        '  line=$(grep "^$3=" "$store") || { echo "not found" >&2; exit 1; }\n'
        '  printf "%s\\n" "${line#*=}"; exit 0; fi\n'
        'if [ "$1 $2" = "env set" ]; then\n'
        '  grep -v "^$3=" "$store" > "$store.new"; mv "$store.new" "$store"\n'
        '  printf "%s=%s\\n" "$3" "$4" >> "$store"; exit 0; fi\n'
        "exit 2\n"
    )
    azd.chmod(0o755)
    return store


def azd_env(store: Path) -> dict[str, str]:
    """The environment `azd` holds now (what the hooks set included)."""
    return dict(line.split("=", 1) for line in store.read_text().splitlines() if line)
