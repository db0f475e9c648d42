"""Day 7's exercises (written with the day's notebook)."""
