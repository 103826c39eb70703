"""Put a build's report and dataset card into its local output folder (OUT/report.html, OUT/README.md)."""

from __future__ import annotations

from pathlib import Path

from coach.adapters.storage import BuildStore
from coach.pipeline.report import publish_report, report_files


def write_report_files(store: BuildStore, build_id: str, out: Path, *, regenerate: bool = True) -> list[Path]:
    """Regenerate (unless told not to) from the stored records, then copy what exists into OUT."""
    if regenerate:
        publish_report(store, build_id)
    written = []
    for name, key in report_files(build_id).items():
        text = store.get_text(key)
        if text is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / name).write_text(text, encoding="utf-8")
            written.append(out / name)
    return written
