"""The chaos table: one row per run, the invariants' figures and whether they held."""

from __future__ import annotations

from simulator.chaos.run import Result

COLUMNS = (
    "fault",
    "mode",
    "load",
    "during fault",
    "accepted",
    "succeeded",
    "failed (clear error)",
    "lost",
    "stuck",
    "DB≠hosts",
    "duplicates",
    "hung",
    "recovery s (bound)",
    "holds",
)


def row(result: Result) -> list[str]:
    v = result.verdict
    bound = f" ({v.recovery_bound_s:g})" if v.recovery_bound_s is not None else ""
    recovery = "-" if v.recovery_s is None else f"{v.recovery_s:g}"
    return [
        result.fault,
        result.mode,
        result.load,
        str(v.during_fault),
        str(v.accepted),
        str(v.succeeded),
        str(v.failed),
        str(v.lost),
        str(len(v.stuck)),
        str(len(v.disagreements)),
        str(len(v.duplicates)),
        str(v.hung),
        recovery + bound,
        "yes" if v.holds else "NO",
    ]


def table(results: list[Result]) -> str:
    """A Markdown table (it reads as plain text too)."""
    rows = [list(COLUMNS), *(row(r) for r in results)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(COLUMNS))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(rows[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows[1:]]
    for result in results:
        for violation in result.verdict.violations():
            out.append(f"  {result.fault}: {violation}")
        if result.verdict.errors:
            codes = ", ".join(f"{c} x{n}" for c, n in result.verdict.errors.most_common())
            out.append(f"  {result.fault}: errors: {codes}")
    return "\n".join(out)
