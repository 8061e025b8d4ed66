-- wrk script: every request fetches the pixel of a recipient picked at random, with that
-- recipient's mail-client user agent, like opens arriving from many people at once.
-- Usage: wrk ... -s bench/pixels.lua URL -- REQUESTS_FILE [TAG]
--   (lines: path <TAB> user agent; a path may be a click's, /t/c/...)
--
-- With TAG (bench/cluster.py), every request's user agent ends with its own tag,
-- " or/<TAG>/<thread>/<n>", so that each answer the balancer logged can be matched with the
-- event stored for it (or its absence, or its double).
--
-- It also counts the requests it sent. wrk's own total counts only completed responses, so
-- requests still in flight when the run stops are in `sent` but not in wrk's total.

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   requests, lines = {}, {}
   for line in io.lines(args[1]) do
      local path, agent = line:match("^([^\t]+)\t(.*)$")
      requests[#requests + 1] = wrk.format("GET", path, { ["User-Agent"] = agent })
      lines[#lines + 1] = { path, agent }
   end
   if args[2] then
      prefix = " or/" .. args[2] .. "/" .. id .. "/"
   end
   sent = 0
   math.randomseed(id * 7919 + os.time())
end

function request()
   sent = sent + 1
   if prefix then
      local line = lines[math.random(#lines)]
      return wrk.format("GET", line[1], { ["User-Agent"] = line[2] .. prefix .. sent })
   end
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
