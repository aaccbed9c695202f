"""The API's routers, one module per feature; `api.app.create_app` includes them."""
