"""Capacity analysis: USL, queueing, demand, backlog, DES and the reopening planner.

Analysis reads profiles and files a run wrote, never a live run.
"""
