"""Face tracking, metric head pose, measurements and try-on rendering; no web or SQL code."""
