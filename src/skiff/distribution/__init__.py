"""The registry client: pull and push images from and to any OCI registry.

    transport    http.client connections (pooled, in threads), TLS policy, redirects
    auth         WWW-Authenticate challenges, bearer tokens (cached per scope), basic
    credentials  Docker's config.json, credential helpers, X-Registry-Auth
    client       RegistryClient / Repository: the distribution-spec endpoints
    manifests    manifest and index parsing, platform selection
    pull, push   the two operations, with Docker's progress events (progress)
    errors       what can go wrong, as skiff.errors categories

skiff.services.distribution records pulled images in the image store and finds
what to push; the API and CLI talk to that service.
"""
