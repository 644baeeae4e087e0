"""HTTP routers, gathered by server.app.create_app."""
