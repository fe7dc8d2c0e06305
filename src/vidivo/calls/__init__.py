"""A call: its session, frozen terms, meter, billing windows, ledger and refunds."""
