-- wrk script: every request fetches the pixel of a recipient picked at random, with that
-- recipient's mail-client user agent, like opens arriving from many people at once.
-- Usage: wrk ... -s bench/pixels.lua URL -- REQUESTS_FILE   (lines: path <TAB> user agent)
--
-- It also counts the requests it sent. wrk's own total counts only completed responses, so
-- requests still in flight when the run stops are in `sent` but not in wrk's total.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   requests = {}
   for line in io.lines(args[1]) do
      local path, agent = line:match("^([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("GET", path, { ["User-Agent"] = agent })
   end
   sent = 0
   math.randomseed(id * 7919 + os.time())
end

function request()
   sent = sent + 1
   return requests[math.random(#requests)]
end

function done(summary, latency, responses)
   local total = 0
   for _, thread in ipairs(threads) do
      total = total + thread:get("sent")
   end
   -- Before the run, wrk calls request() once on the first thread to check what the script
   -- returns (script_verify_request in wrk.c); that request is never sent.
   io.write(string.format("bench: requests sent %d\n", total - 1))
end
