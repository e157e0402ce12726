"""Readers of real-world sources (docs/real-sources.md): S3 object identity of archive URIs, S3 Inventory
reports, S3 Batch Operations completion reports, and Svix message attempts.

Each module documents its interface in its docstring:

- ``s3_uri``: ``s3_object_identity(expr)`` / ``s3_identity_columns(expr)`` (s3_bucket, s3_key,
  s3_version_id of an archive_uri), ``percent_decoded_series`` / ``form_decoded_series``.
- ``s3_inventory``: ``check_reports(specs)`` (integrity of every report first, raising
  ``exportaudit.readers.UnreadableInput``), ``read_report_rows(report)``,
  ``inventory_reports_frame(reports)``.
- ``s3_batch``: ``check_reports(specs)``, ``read_report_rows(report)``,
  ``batch_reports_frame(reports)``.
- ``svix``: ``find_attempt_files``, ``load_attempt_file``, ``decode_attempts`` (delivery
  records in the readers' decoded shape, plus the Svix quarantine reasons).

The custody checks derived from the S3 reports are computed by the pure transform
``transforms.derived_custody``.
"""
