"""The scoring server of a model bundle (`python -m mlops_core deploy bundle`): copied into the bundle as the
package `mlops_bundle_server`, next to copies of the Hub's pure scoring modules (schema, scoring, fastpath, oip,
persistence), and run there with `python -m mlops_bundle_server`. See server.py and uploader.py."""
