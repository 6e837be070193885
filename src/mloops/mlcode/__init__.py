"""ML code and secrets: Python sources (unsafe loads, remote code), chat templates (Jinja2 run at tokenize
time) and credentials left in code and configs."""
