"""WebSocket URL patterns and the ready-made WebSocket application."""
