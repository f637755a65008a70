"""Product-design analytics over touchpoint events: queries, fit gap, exports, charts."""
