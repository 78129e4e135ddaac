// /docs: Swagger UI over the service's own schema (a file, not inline: the Content-Security-Policy forbids inline script)
window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});
