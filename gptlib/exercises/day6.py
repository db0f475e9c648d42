"""Day 6's exercises (written with the day's notebook)."""
