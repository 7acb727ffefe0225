"""``impasto presets``: list the named option sets (shipped and the user's)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help="list the presets that --preset accepts",
                       description="List the presets (impasto/data/presets.toml, then --presets-file).")
    p.add_argument("name", nargs="?", help="show this preset's options")
    p.add_argument("--presets-file", metavar="FILE", help="your own presets (TOML, same form as the shipped file)")
    p.set_defaults(run=cmd_presets)


def cmd_presets(args) -> int:
    from .. import presets

    if args.name is not None:
        preset = presets.get(args.name, args.presets_file)
        print(f"{preset.name}: {preset.description}  ({preset.source})")
        for line in presets.describe(preset):
            print(f"  {line}")
        return 0
    found = presets.available(args.presets_file)
    width = max(len(name) for name in found)
    for preset in found.values():
        print(f"{preset.name:<{width}}  {preset.description}")
    return 0
