// Where the API is. Empty: the same origin as this page (the local stack). When the page is deployed as
// static files in front of the API elsewhere, set the API's URL here (e.g. the SAM output ApiUrl).
window.IMAGESEARCH_API = window.IMAGESEARCH_API || "";
