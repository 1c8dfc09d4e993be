"""The benchmark zoo: install trained models into assets/zoo with their cards, compute the cards' metrics,
print the tables, draw the contact sheet.

    alignjax-zoo install NAME [--workdir runs/zoo/NAME]   copy a finished run into assets/zoo/NAME with its card
    alignjax-zoo cards [--n 5000] [--models a,b] [--no-demo]
                                                         the cards' metrics (FD_eval/KID/precision/recall), then
                                                         the tables
    alignjax-zoo tables                                  the evaluators' accuracy table and the zoo table (markdown)
    alignjax-zoo sheet [--out docs/zoo_contact_sheet.png]
                                                         the contact sheet (same z through every model)

`python -m alignjax.eval.zoo ...` is the same command line. The library: `alignjax.eval.zoo`.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import flags

from alignjax.cli._common import CliError, Command, check_outfile, entry, fail, message
from alignjax.eval import zoo as Z
from alignjax.eval.scores import accuracy_markdown
from alignjax.metrics.cards import card_metrics

cmd = Command('alignjax-zoo', __doc__)
flags.DEFINE_string('workdir', None, 'install: the training run (default: runs/zoo/NAME)', flag_values=cmd.fv)
flags.DEFINE_integer('n', Z.CARD_N, 'cards: images per metric', flag_values=cmd.fv)
flags.DEFINE_string('models', None, 'cards: comma-separated zoo names (default: all installed)', flag_values=cmd.fv)
flags.DEFINE_boolean('no-demo', False, 'cards: skip the demo parent (compared in the table)', flag_values=cmd.fv)
flags.DEFINE_string(
    'out', str(Z.ROOT / 'docs' / 'zoo_contact_sheet.png'), 'sheet: the PNG to write', flag_values=cmd.fv
)

SUBCOMMANDS = {'install': {'workdir'}, 'cards': {'n', 'models', 'no_demo'}, 'tables': set(), 'sheet': {'out'}}


def _usage(text: str):
    fail(f'{text} (see {cmd.prog} --help)', 2)


def tables() -> None:
    print(accuracy_markdown(levels=('clean', 'gan')))
    print()
    demo = Z.ZOO_DIR / 'demo_parent_metrics.json'
    cards = {'demo_parent': dict(domain='faces', metrics=json.loads(demo.read_text()) if demo.exists() else None)}
    cards.update({nm: Z.zoo_card(nm) for nm in Z.ZOO if Z.zoo_path(nm).exists()})
    print(Z.markdown_table(cards))


@entry
def main(argv=None) -> int:
    a = cmd.parse(argv)
    if not a.positional:
        _usage(f'give a subcommand: {", ".join(SUBCOMMANDS)}')
    sub, rest = a.positional[0], a.positional[1:]
    if sub not in SUBCOMMANDS:
        _usage(f'{sub!r}: no such subcommand; choose from {", ".join(SUBCOMMANDS)}')
    stray = sorted((a.present - {'debug'}) - SUBCOMMANDS[sub])
    if stray:
        _usage(f'--{stray[0].replace("_", "-")} is not a flag of {sub!r}')
    if sub == 'install':
        if len(rest) != 1 or rest[0] not in Z.ZOO:
            _usage(f'install takes one zoo name: {", ".join(Z.ZOO)}')
        name = rest[0]
        try:
            dst = Z.install(name, a.workdir or Z.ROOT / 'runs' / 'zoo' / name)
        except FileNotFoundError as e:  # an unfinished run, or a parent not installed yet
            raise CliError(message(e)) from None
        print(f'installed {dst}: {json.loads((dst / "card.json").read_text())["kimg_total"]} kimg in total')
        return 0
    if rest:
        _usage(f'{rest[0]}: unexpected argument')
    if sub == 'cards':
        names = a.models.split(',') if a.models else None
        unknown = [nm for nm in names or () if nm not in Z.ZOO]
        if unknown:
            raise CliError(f'--models: unknown zoo model {unknown[0]!r}; the zoo has {sorted(Z.ZOO)}')
        card_metrics(names, n=a.n, demo=not a.no_demo)
        tables()
    elif sub == 'tables':
        tables()
    else:
        print(f'wrote {Z.contact_sheet(check_outfile(Path(a.out)))}')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
