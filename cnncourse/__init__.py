"""cnncourse."""
