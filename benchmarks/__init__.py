"""Speed and quality measurements of the course, recorded in RESULTS.md and results.json."""
