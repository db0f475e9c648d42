"""Day 5's exercises (written with the day's notebook)."""
