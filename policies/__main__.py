"""The ml-platform policy pack, as `pulumi preview --policy-pack policies` runs it.

Per stack, add `--policy-pack-config policies/config/<stack>.json`. The CLI runs
`python -u -m pulumi.policy <engine-address> .` with the pack directory as cwd, which runs this file: constructing
`PolicyPack` starts the analyzer's gRPC server, prints its port and blocks. The policies themselves live in
`pack.py` and `rules/`, importable without starting anything.
"""

import sys
from pathlib import Path

PACK_DIR = str(Path(__file__).resolve().parent)
# The names the rules share with the Pulumi program: the `vocabulary` package at the repository root.
REPOSITORY_DIR = str(Path(__file__).resolve().parents[1])


def main() -> None:
    # `rules`, `settings` and `pack` are top-level modules of the pack directory, whatever the cwd.
    for directory in (REPOSITORY_DIR, PACK_DIR):
        if directory not in sys.path:
            sys.path.insert(0, directory)

    from pulumi_policy import PolicyPack

    from pack import PACK_ENFORCEMENT, PACK_NAME, build_policies

    PolicyPack(name=PACK_NAME, policies=build_policies(), enforcement_level=PACK_ENFORCEMENT)


if __name__ == "__main__":
    main()
