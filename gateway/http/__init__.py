"""The aiohttp side: application factory, middlewares and routes."""
