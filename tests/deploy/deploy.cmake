# Deployment tests (deploy/: container images and Kubernetes manifests).
# Wire in with, in tests/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/deploy/deploy.cmake)
#
#   deploy_manifests   every kustomization of deploy/kubernetes renders
#       (kubectl kustomize) and validates offline against the Kubernetes
#       OpenAPI schema (npm kubernetes-models, pinned by package-lock.json,
#       installed with npm ci on first use), plus the policy checks.
#       ~10-25 s on 2 cores. Skipped (77) without kubectl or node.
#   deploy_podman_e2e  builds the images from this build's binaries
#       (deploy/build-images.sh; ~6 min the first time, when it makes the
#       Debian base with mmdebstrap and runs apt-get in the image builds;
#       ~10 s once podman's layer cache has them), plays the sidecar and
#       split topologies with podman kube play and checks them against the
#       binaries: ~60 s. Needs root, podman, runc, catatonit, mmdebstrap
#       (Debian packages); skipped (77) without podman, runc or kubectl.
#       RUN_SERIAL: it uses every core and fixed pod names.
add_test(NAME deploy_manifests
  COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/validate.sh ${CMAKE_BINARY_DIR}/deploy_manifests)
set_tests_properties(deploy_manifests PROPERTIES
  TIMEOUT 300 SKIP_RETURN_CODE 77 LABELS deploy)

if(TARGET runnerd AND TARGET samplerd AND TARGET samplerctl)
  add_test(NAME deploy_podman_e2e
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/podman_e2e.sh ${CMAKE_BINARY_DIR}
      ${CMAKE_BINARY_DIR}/deploy_e2e)
  set_tests_properties(deploy_podman_e2e PROPERTIES
    TIMEOUT 900 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE LABELS "deploy;podman")
endif()
