"""The web console for the people who work the cases (policy §12, contract "the console")."""
