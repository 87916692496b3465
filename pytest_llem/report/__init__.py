"""Reports: JUnit properties (worker side), JSONL/JSON, terminal tables (controller side)."""
