package authsvc

// The hosted sign-in page, GET /login. Owned by the page work (issue #17).

// pageRoutes are the hosted pages.
var pageRoutes = map[string]handlerFunc{}
