"""Mobile lines: remaining data, data gifts, My Page login tickets (seed 000)."""
