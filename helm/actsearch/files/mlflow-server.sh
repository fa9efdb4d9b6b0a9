# Starts `mlflow server` (the bundled MLflow's entry point) with every secret in the environment,
# never on a command line, where `ps` and /proc/<pid>/cmdline show it to anyone on the node:
# mlflow reads the backend store URI (which holds the database password) from
# $MLFLOW_BACKEND_STORE_URI itself. With ACTSEARCH_MLFLOW_AUTH=basic it runs MLflow's basic
# authentication (--app-name basic-auth): its config file is written here, readable only by
# this user, its users kept in the same database (tables of their own); the admin user comes
# from $MLFLOW_AUTH_ADMIN_USERNAME / $MLFLOW_AUTH_ADMIN_PASSWORD. A checked password is cached for
# 60 s per worker (each check is a deliberately slow hash, and the controller polls often): a
# password changed or a user deleted takes up to a minute to be refused. Arguments go to
# `mlflow server`.
set -eu
if [ "${ACTSEARCH_MLFLOW_AUTH:-}" = basic ]; then
  conf="${TMPDIR:-/tmp}/mlflow-basic-auth.ini"
  umask 077
  # the config file is read with interpolation: a URI's %-escapes are written as %%
  # (printf is a builtin: the URI reaches sed on its standard input, not on a command line)
  store=`printf '%s' "$MLFLOW_BACKEND_STORE_URI" | sed 's/%/%%/g'`
  cat > "$conf" <<INI
[mlflow]
default_permission = ${ACTSEARCH_MLFLOW_DEFAULT_PERMISSION:-READ}
database_uri = ${store}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
  export MLFLOW_AUTH_CONFIG_PATH="$conf"
  set -- "$@" --app-name basic-auth
fi
exec mlflow server "$@"
