"""Day 4's exercises (written with the day's notebook)."""
