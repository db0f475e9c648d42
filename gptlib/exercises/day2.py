"""Day 2's exercises (written with the day's notebook)."""
