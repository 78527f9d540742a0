"""Surge scenarios: profiles, arrival curves, applicant journeys and the run recorder."""
