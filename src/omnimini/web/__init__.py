"""Static pages (arena, leaderboard, playground) served by server/routes_arena.py as package data."""
