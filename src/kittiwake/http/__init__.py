"""HTTP(S) listeners (aiohttp): ACME http-01 and tls-alpn-01 transport, redirects, content."""
