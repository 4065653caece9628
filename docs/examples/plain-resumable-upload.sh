#!/usr/bin/env bash
# Uploads a large file to a minihost server with the plain dialect's
# resumable flow: check credentials, init, send chunks (in parallel, each
# retried until it succeeds), finish (retried while the server assembles),
# print the links.
#
# Usage:
#   MINIHOST_URL=https://files.example.com MINIHOST_USER=alice MINIHOST_PASSWORD=sp_… \
#     plain-resumable-upload.sh FILE [FOLDER_ID]
# Optional: CHUNK_MB (default 8), PARALLEL (4), RETRIES per chunk (10).
#
# Resuming: the session id is kept in FILE.minihost-upload until the upload
# finishes. Run the script again after a dropped connection and it continues
# the same session (chunks the server already has are cheap to send again).
set -euo pipefail

file=${1:?usage: plain-resumable-upload.sh FILE [FOLDER_ID]}
folder=${2:-}
url=${MINIHOST_URL:?set MINIHOST_URL}
user=${MINIHOST_USER:?set MINIHOST_USER}
password=${MINIHOST_PASSWORD:?set MINIHOST_PASSWORD}
chunk_bytes=$(( ${CHUNK_MB:-8} * 1024 * 1024 ))
parallel=${PARALLEL:-4}
retries=${RETRIES:-10}
state="$file.minihost-upload"

size=$(stat -c %s "$file")
chunks=$(( (size + chunk_bytes - 1) / chunk_bytes ))
credentials=(--data-urlencode "username=$user" --data-urlencode "password=$password")

check=$(curl -sS -X POST "$url/api/cliCheckCredentials" "${credentials[@]}" || true)
[ "$check" = VALID ] || { echo "credentials rejected: $check" >&2; exit 1; }

id=""
if [ -s "$state" ]; then
    id=$(cat "$state")
    status=$(curl -sS "$url/api/chunkedUploadStatusPlain?id=$id" | head -n 1 || true)
    [ "$status" = PENDING ] || id=""  # expired or finished: start over
fi
if [ -z "$id" ]; then
    folder_args=()
    [ -n "$folder" ] && folder_args=(-d "folderId=$folder")
    id=$(curl -sS -f -X POST "$url/api/initChunkedUploadPlain" "${credentials[@]}" \
        --data-urlencode "filename=$(basename "$file")" -d "size=$size" "${folder_args[@]}")
    echo "$id" > "$state"
fi

# Each chunk is copied to a spool file that curl sends with its length known
# up front (curl reads a piped "@-" into memory first). Every lane reuses its
# own spool file, which spares the kernel allocating and freeing 8 MiB of
# pages per chunk; on 2 cores the client's copying otherwise costs as much as
# the server's work. The last chunk is shorter, so it gets a file of its own.
spool=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}" )/minihost-upload.XXXXXX")
trap 'rm -rf "$spool"' EXIT

send_chunk() {  # index lane
    local index=$1 part="$spool/lane-$2" attempt=1
    (( index == chunks - 1 )) && part="$spool/last"
    while true; do
        if dd if="$file" of="$part" bs="$chunk_bytes" skip="$index" count=1 conv=notrunc status=none \
            && curl -sS -f -o /dev/null -H "Expect:" -X POST -F "file=@$part;filename=chunk-$index" \
                "$url/api/uploadChunkPlain?id=$id&chunk=$index"; then
            return 0
        fi
        if [ "$attempt" -ge "$retries" ]; then echo "chunk $index failed $retries times" >&2; return 1; fi
        sleep $(( attempt < 5 ? attempt : 5 ))
        attempt=$(( attempt + 1 ))
    done
}

# PARALLEL lanes; lane L sends chunks L, L+PARALLEL, L+2*PARALLEL, …
lanes=()
for (( lane = 0; lane < parallel && lane < chunks; lane++ )); do
    ( for (( index = lane; index < chunks; index += parallel )); do send_chunk "$index" "$lane" || exit 1; done ) &
    lanes+=($!)
done
failed=0
for pid in "${lanes[@]}"; do wait "$pid" || failed=1; done
[ "$failed" = 0 ] || { echo "upload incomplete; run again to resume session $id" >&2; exit 1; }

while true; do
    response=$(curl -sS -w '\n%{http_code}' -X POST "$url/api/finishChunkedUploadPlain" "${credentials[@]}" -d "id=$id")
    code=${response##*$'\n'}
    body=${response%$'\n'*}
    case "$code" in
        200) rm -f "$state"; echo "$body"; exit 0 ;;
        202) sleep 5 ;;
        *) echo "finish failed ($code): $body" >&2; exit 1 ;;
    esac
done
