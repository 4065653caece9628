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

send_chunk() {  # index
    local index=$1 attempt=1
    while true; do
        if dd if="$file" bs="$chunk_bytes" skip="$index" count=1 status=none \
            | curl -sS -f -o /dev/null -X POST -F "file=@-;filename=chunk-$index" \
                "$url/api/uploadChunkPlain?id=$id&chunk=$index"; then
            return 0
        fi
        if [ "$attempt" -ge "$retries" ]; then echo "chunk $index failed $retries times" >&2; return 1; fi
        sleep $(( attempt < 5 ? attempt : 5 ))
        attempt=$(( attempt + 1 ))
    done
}
export -f send_chunk
export file chunk_bytes url id retries
seq 0 $(( chunks - 1 )) | xargs -P "$parallel" -I{} bash -c 'send_chunk {}'

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
