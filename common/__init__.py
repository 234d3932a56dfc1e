"""What every stage shares, below all of them (simulation <- imaging <- model <- analysis).

- `provenance`  config/file digests, software versions, provenance records, atomic writes
- `seeds`       the seed derivations of every random stream
- `errors`      `StageError`, the base of every stage's known error
- `cli`         the common CLI entry: logging set-up, `error: <message>` and exit status 2
- `settings`    config sections checked against workflow/schemas/ (defaults filled in)

Imports point one way: `common` imports no stage package, and every stage may import it.
"""
