"""Day 1's exercises (written with the day's notebook)."""
