// Starts Swagger UI on /docs (a file, not an inline script: the CSP allows only files).
const root = document.getElementById("swagger-ui");
window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  domNode: root,
  deepLinking: true,
  tryItOutEnabled: false,
  layout: "BaseLayout",
});
