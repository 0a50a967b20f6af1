"""Reports: a sweep as a learning-rate study — results table, curves, verdicts.

One data path, several renderers, one module each:

- `lrtrack.report.study`: `load_study` reads a sweep into a `Study`, one `ConfigResult`
  per proposed config with its per-epoch history, final summary and `Verdict`
  (`lrtrack.verdicts.judge`).
- `lrtrack.report.compare`: `compare_expected` sets the numbers against a published
  study's figures (``expected:`` in the sweep file).
- `lrtrack.report.tables`: the results and comparison tables (Markdown for the terminal
  and W&B; the HTML page and the dashboard use the same columns and cells).
- `lrtrack.report.html`: `write_html`, a self-contained page (Jinja2, SVG charts).
- `lrtrack.report.wandb_report`: a W&B Report built with ``wandb-workspaces``
  (`save_wandb_report`; `wandb_report_json` shows it without a server).
"""
