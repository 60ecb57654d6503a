"""Gates, gate reports, the release ledger and promotion."""
