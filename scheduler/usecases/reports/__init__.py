"""The admins' reports: queries over data that carries no personal data, tables and charts."""
