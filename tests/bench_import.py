"""`make bench`: the importer's throughput (leads/services/importer.py) on Azurite. Prints figures; asserts nothing.

Rows in Partner Center's shape are written to a source table, then imported by one run of the importer as the
timer runs it (one process, rows one after another): a first run (each row a new lead: one transaction and one
enqueue), a second run (every row within the overlap, skipped from the watermark), and a run after the
watermark is lost (each row refused by its import marker: a failed transaction and a read)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

ROWS = 500


def main() -> None:
    from devhost.azurite import start_azurite
    from leads.services.importer import Importer
    from leads.storage.azure_clients import table_service
    from leads.storage.source_table import SourceTable, WatermarkTable
    from tests.support.partner_center_table import partner_center_row, source_table
    from tests.support.pipeline import RecordingDestination, build_pipeline

    work = Path(tempfile.mkdtemp(prefix="leads-bench-import-"))
    azurite = start_azurite(Path(__file__).resolve().parents[1], work / "azurite", free_ports=True, in_memory=True)
    try:
        pipeline = build_pipeline(azurite.connection_string, str(work / "spool"),
                                  {"email": RecordingDestination("email")})
        source = source_table(azurite.connection_string)
        rows = [partner_center_row(f"buyer{n}@contoso.example") for n in range(ROWS)]
        for start in range(0, ROWS, 100):  # one partition per day: Partner Center's PartitionKey is the date
            source.submit_transaction([("create", row) for row in rows[start:start + 100]])
        counted = table_service(pipeline.settings.storage, transport=pipeline.transport, retry_total=0)

        def run(label: str) -> None:
            importer = Importer(SourceTable(counted.get_table_client(source.table_name)),
                                WatermarkTable(pipeline.table.leads, source.table_name), pipeline.ingest,
                                pipeline.table)
            pipeline.transport.reset()
            started = time.perf_counter()
            report = importer.run()
            seconds = time.perf_counter() - started
            print(f"import, {label:<38} {report.read / seconds:7.0f} rows/s ({report.read} rows in {seconds:.2f} s; "
                  f"{pipeline.transport.total / report.read:.2f} storage calls per row; {report.imported} new, "
                  f"{report.duplicates} already imported, {report.skipped} skipped)")

        run("first run (every row a new lead):")
        run("second run (rows within the overlap):")
        pipeline.table.leads.delete_entity("importer", source.table_name)
        run("watermark lost (import markers decide):")
    finally:
        azurite.process.terminate()


if __name__ == "__main__":
    main()
